# Like kagglehub 1.0.2's exceptions.
class KaggleApiHTTPError(Exception):  # a requests.HTTPError subclass there
    def __init__(self, message: str, response=None) -> None:
        super().__init__(message)
        self.response = response


class UnauthenticatedError(Exception):
    """Exception raised for errors in the authentication process."""

    def __init__(self, message: str = "User is not authenticated") -> None:
        super().__init__(message)
