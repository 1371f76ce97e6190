# Backslash-newline inside double quotes, and a quoted newline that stays.
joined="one \
two \
three"
kept="one
two"
