from hashhop.cli import main

main()
