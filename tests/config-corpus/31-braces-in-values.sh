# Braces that are not expansions.
curly="{x}"
closing=${CORPUS_NAME}}
empty_default="${CORPUS_UNSET:-}"
brace_in_default=${CORPUS_UNSET:-a\}b}
