# Non-ASCII text passes through unchanged.
accented=héllo
quoted="日本語 $CORPUS_NAME"
single='ünïcödé'
