# The simplest form: NAME=value, one per line.
plain=1
word=hello
empty=
path=/usr/local/bin
