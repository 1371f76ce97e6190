# Compound commands whose bodies bash never runs here.
before=1
if false; then before=2; fi
while false; do before=3; done
for x in; do before=4; done
case "a)b" in
  "fi") before=5 ;;
esac
# Reading `before` here is refused: the reader cannot know that these bodies never run.
after=done
