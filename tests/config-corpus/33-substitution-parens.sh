# Parentheses, quotes and comments inside $(…).
paren_in_quotes=$(echo 'x)')
nested=$(echo $(echo inner))
subshell=$( (echo sub) )
commented=$(echo visible # a comment with )
)
