"""In-venv checks for the devcloud plugins; run from the osplugin directory with the OpenStack venv python."""
