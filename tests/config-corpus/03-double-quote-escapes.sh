# Inside double quotes only \\ \" \$ \` and backslash-newline are escapes.
backslash="back\\slash"
quote="quote \" inside"
dollar="dollar \$HOME"
tick="tick \`x\`"
kept="keep \n \a \' backslashes"
