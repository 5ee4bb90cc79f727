"""OMS Connector: Adobe Commerce / Magento 2 ⇄ an MCOM-protocol Order Management System."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("oms-connector")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+source"
