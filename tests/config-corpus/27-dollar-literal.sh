# A $ that starts no expansion stands for itself.
alone=$
quoted="$"
single='$'
trailing="a$"
slash=$/x
space="$ x"
