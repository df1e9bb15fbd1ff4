"""Fake Google Workspace (Calendar, Meet, Drive, People, Directory) for the local stack and tests."""

from .control import FakeGoogleControl, FakeGoogleControlError
from .server import FakeGoogle
from .state import UNSET, FakeWorld, GoogleError

__all__ = ["FakeGoogle", "FakeGoogleControl", "FakeGoogleControlError", "FakeWorld", "GoogleError", "UNSET"]
