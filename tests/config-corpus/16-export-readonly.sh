# export and readonly, with and without values, several per line.
export one=1
export CORPUS_NAME
export two="x y" three=3
readonly four=4
