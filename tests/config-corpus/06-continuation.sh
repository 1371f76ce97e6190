# Backslash-newline joins lines outside single quotes.
joined=abc\
def
quoted="x\
y"
single='p\
q'
first=1 \
second=2
