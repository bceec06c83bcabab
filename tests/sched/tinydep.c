/* A shared library that exists only beside ktstr_needs_tinydep. */
int ktstr_tinydep_answer(void);

int ktstr_tinydep_answer(void)
{
	return 42;
}
