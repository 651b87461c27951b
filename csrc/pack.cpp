// Left-zero-padded batch packing (filled in by the staging work).
