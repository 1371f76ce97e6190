# ${VAR:+word} and ${VAR+word}: the word when VAR is set.
colon_set=${CORPUS_NAME:+yes}
colon_empty=${CORPUS_EMPTY:+yes}
plain_empty=${CORPUS_EMPTY+yes}
plain_unset=${CORPUS_UNSET+yes}
