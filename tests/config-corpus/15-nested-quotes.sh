# Quotes of one kind inside the other, and quotes inside expansions.
apostrophes="it's 'quoted'"
doubles='say "hi"'
substituted="$(echo "inner \"q\"")"
default_dq="${CORPUS_UNSET:-"a  b"}"
default_sq=${CORPUS_UNSET:-'x  y'}
literal_sq="${CORPUS_UNSET:-'q'}"
