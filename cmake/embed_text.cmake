# Turns a text file into a C array so the binary needs no data file at run time.
#   cmake -DIN=data/hw_catalog.json -DOUT=hw_catalog_data.c -DNAME=po__hw_catalog_json -P embed_text.cmake
# The array is unsigned char (bytes above 127 would overflow a signed char) and NUL-terminated.
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
# Break the one long line every 24 bytes, for the compiler's diagnostics and for people.
string(REGEX REPLACE "((0x..,){24})" "\\1\n    " body "${body}")
file(WRITE "${OUT}" "/* Generated from ${IN} by cmake/embed_text.cmake: do not edit. */\n"
                    "const unsigned char ${NAME}[] = {\n    ${body}0x00};\n")
