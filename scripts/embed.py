#!/usr/bin/env python3
"""embed.py INPUT OUTPUT NAME: write a C header holding INPUT's bytes as
`static const char NAME[]` (NUL-terminated) and `NAME_len`, so a file is part of the
binary (the admin dashboard)."""
import sys

src, dst, name = sys.argv[1:4]
data = open(src, "rb").read()
with open(dst, "w") as f:
    f.write(f"/* generated from {src.rsplit('/', 1)[-1]} by scripts/embed.py: do not edit */\n")
    f.write(f"static const char {name}[] = {{\n")
    for i in range(0, len(data), 16):
        f.write("    " + ", ".join(str(b) for b in data[i:i + 16]) + ",\n")
    f.write("    0};\n")
    f.write(f"static const unsigned long {name}_len = {len(data)};\n")
