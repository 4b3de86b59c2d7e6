"""Loading task data (Hugging Face `datasets`, or the project's fixtures through the same code),
tokenisation per format, and batching."""
