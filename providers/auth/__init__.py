"""Authentication: a bearer token in, an identity (principal + attributes) out."""
