# Included by other corpus files.
common_value=from-common
