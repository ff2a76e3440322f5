from latentstudio.cli.main import main

main()
