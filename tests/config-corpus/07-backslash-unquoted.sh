# Outside quotes a backslash quotes the next character.
space=a\ b
dollar=\$HOME
quotes=\'x\"
backslash=\\
hash=\#not-a-comment
