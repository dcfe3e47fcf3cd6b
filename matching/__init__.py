"""matching package of unigrid (see README.md in this folder)."""
