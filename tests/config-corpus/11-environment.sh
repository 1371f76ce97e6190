# Variables the file does not assign come from the environment; unset ones are empty.
name=$CORPUS_NAME
braced=${CORPUS_NAME}x
quoted="$CORPUS_SPACED"
unsplit=$CORPUS_SPACED
unset_value=$CORPUS_UNSET
home=$HOME
