# NAME+=value appends.
a=x
a+=y
b+=z
c=$CORPUS_NAME
c+=" smith"
