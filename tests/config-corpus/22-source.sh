# . FILE reads another file's assignments, relative to the current directory.
. tests/config-corpus/included/common.sh
combined=$common_value-more
