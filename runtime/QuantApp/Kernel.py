"""`import QuantApp.Kernel as qak`: CoFlows' kernel names (User, AccessType, M, MCallback, JVM)."""

from coflows.compat.kernel import JVM, M, AccessType, MCallback, User, UserData

__all__ = ["JVM", "M", "AccessType", "MCallback", "User", "UserData"]
