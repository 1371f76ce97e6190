# A double-quoted value may span lines and still expand.
multi="first $CORPUS_NAME
second line
"
after=1
