# A comment with 'unbalanced quotes and "more
value=1 # trailing comment with 'quote
hash_inside=x#y
quoted_hash="#not a comment"
   # an indented comment "too"
after=2
