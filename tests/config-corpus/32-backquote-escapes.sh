# Backslashes inside backquotes protect $, ` and \ from the outer shell.
inner_home=`echo \$HOME`
in_quotes="`echo \"q\"`"
double_backslash=`printf '%s' 'a\\b'`
