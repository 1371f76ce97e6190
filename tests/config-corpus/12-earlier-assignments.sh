# An expansion sees the assignments before it, in order.
a=1
b=$a$a
a=2
c=$a
d=${a}0
