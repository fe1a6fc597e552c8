"""AWS Lambda API errors, raised where bad input is first parsed and rendered by the API.

Each carries the exception name AWS sends in `X-Amzn-ErrorType` and its HTTP status, so
boto3 raises the same `ClientError` code against eventmill as against AWS.
"""

from __future__ import annotations


class LambdaError(Exception):
    code = "ServiceException"
    status = 500

    def __init__(self, message: str, **extra: object) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, object]:
        return {"Type": "User" if self.status < 500 else "Service", "message": self.message, **self.extra}


class ValidationException(LambdaError):
    code = "ValidationException"
    status = 400


class InvalidParameterValueException(LambdaError):
    code = "InvalidParameterValueException"
    status = 400


class InvalidRequestContentException(LambdaError):
    code = "InvalidRequestContentException"
    status = 400


class ResourceNotFoundException(LambdaError):
    code = "ResourceNotFoundException"
    status = 404


class ResourceConflictException(LambdaError):
    code = "ResourceConflictException"
    status = 409


class PreconditionFailedException(LambdaError):
    code = "PreconditionFailedException"
    status = 412


class RequestTooLargeException(LambdaError):
    code = "RequestTooLargeException"
    status = 413


class RequestEntityTooLargeException(LambdaError):
    """What Invoke answers for an oversize payload (the name the live service sends)."""

    code = "RequestEntityTooLargeException"
    status = 413


class TooManyRequestsException(LambdaError):
    code = "TooManyRequestsException"
    status = 429


def constraint(field: str, value: object, rule: str) -> ValidationException:
    """AWS's wording for a model constraint violation (e.g. MemorySize 64)."""
    return ValidationException(
        f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {rule}"
    )


def function_not_found(name: str, region: str = "us-east-1", account: str = "123456789012") -> ResourceNotFoundException:
    return ResourceNotFoundException(
        f"Function not found: arn:aws:lambda:{region}:{account}:function:{name}", Type="User"
    )
