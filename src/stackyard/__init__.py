"""stackyard: operate OpenStack clouds for others — compute, quotas, exports, inventory."""

__version__ = "0.1.0"
