# $(…) and `…` run commands; trailing newlines go, leading blanks stay.
dollar_paren=$(echo hi)
backquoted=`echo there`
trailing="$(printf 'x\n\n\n')"
leading=$(printf '  lead')
inner_newline=$(printf 'a\nb\n')
