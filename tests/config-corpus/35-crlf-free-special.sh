# Characters special elsewhere but literal inside quotes.
operators="a;b&c|d<e>f(g)h"
single='a;b&c|d<e>f(g)h'
escaped=a\;b\&c\|d
