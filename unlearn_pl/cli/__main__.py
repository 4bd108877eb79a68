from unlearn_pl.cli.main import main

main()
