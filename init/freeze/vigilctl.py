"""The frozen client program (build/frozen/vigil/vigilctl): vigilctl and the sysvinit names.

Frozen beside the init in the same tree, sharing its _internal/, with a bundle of its own
that leaves out what a client run never loads (see freeze.py); vigil.multicall says what
it hands to the full program.
"""

from vigil import multicall

if __name__ == "__main__":
    multicall.client_entry()
