# A single-quoted value may span lines, keeping the newlines.
multi='first line
second line
   indented third'
after=done
