# A command substitution sees the assignments made before it.
who=bob
greeting=$(echo "hi $who")
export exported=visible
seen=$(echo "$exported")
