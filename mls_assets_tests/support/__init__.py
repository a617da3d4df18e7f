"""What the tests share, as plain modules: constants, helpers and fixture definitions. A
folder's conftest imports the fixtures it uses from here; no conftest imports another."""
