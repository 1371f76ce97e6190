# Single quotes keep everything literally; an apostrophe needs '\'' .
apostrophe='it'\''s'
doubles='a "double" inside'
dollar='$HOME is not expanded'
backslash='a\b\\c'
