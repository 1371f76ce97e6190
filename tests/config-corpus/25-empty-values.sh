# Different ways to write an empty value.
a=
b=''
c=""
d=$CORPUS_UNSET
e=${CORPUS_UNSET}
f=''""''
