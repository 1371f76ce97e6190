# Assignments are neither split nor globbed.
star=*
class=[abc]
question=?
pipe='a|b'
equals=x=y
braces={a,b}
