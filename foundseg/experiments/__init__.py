"""Each chapter's protocol as functions: models and the scale's counts in, the numbers the chapter prints out,
as plain data. Chapters, the command line and ``evidence/zoos.py`` call the same functions."""
