class ForcedToolChoice:
    @classmethod
    def from_body(cls, body):
        return None
