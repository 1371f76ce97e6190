# ${VAR-word}: the word only when VAR is unset; an empty value stays.
from_empty=${CORPUS_EMPTY-default}
from_unset=${CORPUS_UNSET-default}
spaced=${CORPUS_UNSET-a  b  c}
