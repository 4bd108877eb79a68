from unlearn_pl.cli import main

main()
