# A tilde expands at the start of a value and after a colon; quoted it stays.
bare=~
slash=~/x
colons=/bin:~/y:~
quoted="~"
escaped=\~
middle=a~b
