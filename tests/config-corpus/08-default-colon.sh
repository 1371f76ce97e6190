# ${VAR:-word}: the word when VAR is unset or empty.
from_empty=${CORPUS_EMPTY:-default}
from_unset=${CORPUS_UNSET:-default}
from_set=${CORPUS_NAME:-default}
nested=${CORPUS_UNSET:-${CORPUS_NAME:-none}}
