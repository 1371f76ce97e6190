# `source` is bash's name for `.`; later assignments override the sourced ones.
source ./tests/config-corpus/included/common.sh
common_value=overridden
