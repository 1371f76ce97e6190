# Exported values are used like any other.
export list=/a:/b
copy=$list
export quoted="$list:/c"
