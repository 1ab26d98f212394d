"""Vector stores: turning files into chunks (text extraction, chunking) for a vector IO provider."""
